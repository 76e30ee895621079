"""Audio for Asterisk: conversion to 8 kHz slin, offline TTS, the prompt catalogue,
centralist-recorded alert messages and the retention of spoken tips.

Modules: ``convert`` (any input -> 8 kHz mono 16-bit), ``tts`` (espeak-ng, cached),
``catalogue`` (every IVR prompt, nl/en), ``messages`` (an action's alert sound),
``retention`` (tip paths and purge), ``paths`` (disk layout), ``cli`` (click group).
"""
