"""The one compiled part: RFC 8291 encryption of a batch of pushes outside Python's lock
(``broadcasting/channels/_webpush_seal.c``, on the system's OpenSSL 3: Debian's libssl-dev).
Everything else about the package is in setup.cfg."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "broadcasting.channels._webpush_seal",
            ["broadcasting/channels/_webpush_seal.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        )
    ]
)
