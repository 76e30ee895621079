"""inquiry"""
