"""Time to build the whole prompt catalogue with espeak-ng: cold (empty cache) and warm (cached).

Cold = espeak-ng + pydub/ffmpeg conversion + install per prompt, into a fresh data dir.
Warm = the same build again: cache hit, compare with the installed file, nothing written.
Also times one typical alert message (what a broadcast pays once per action and language).
The last line printed is one JSON object with the figures.

    python benchmarks/tts_prompts.py [--quick]     # --quick: Dutch only
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from burgernet.settings import load_settings
from recordings.catalogue import alert_message_sound, build_prompt, prompt_names
from recordings.convert import read_wav_format
from recordings.tts import EspeakNg

ALERT_TEXT = (
    "De politie zoekt een man van ongeveer veertig jaar, lang en slank, met kort grijs haar. "
    "Hij draagt een rode jas en een blauwe spijkerbroek en is voor het laatst gezien bij het station."
)


def build_all(langs: list[str], data_dir: Path, engine: EspeakNg) -> tuple[dict[str, float], float]:
    """Per-prompt seconds ("nl/welcome": 0.21) and the spoken duration of everything built."""
    settings = load_settings(data_dir=data_dir)
    timings: dict[str, float] = {}
    audio_seconds = 0.0
    for lang in langs:
        for name in prompt_names():
            started = time.perf_counter()
            built = build_prompt(lang, name, settings=settings, engine=engine)
            timings[f"{lang}/{name}"] = time.perf_counter() - started
            audio_seconds += read_wav_format(built.path)[3]
    return timings, audio_seconds


def summary(timings: dict[str, float]) -> dict[str, float]:
    values = sorted(timings.values())
    return {
        "total_s": round(sum(values), 3),
        "p50_ms": round(statistics.median(values) * 1000, 2),
        "p95_ms": round(values[max(0, int(len(values) * 0.95) - 1)] * 1000, 2),
        "max_ms": round(values[-1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Dutch prompts only")
    args = parser.parse_args()
    langs = ["nl"] if args.quick else ["nl", "en"]
    engine = EspeakNg()

    with tempfile.TemporaryDirectory(prefix="bench-tts-") as scratch:
        data_dir = Path(scratch)
        cold, audio_seconds = build_all(langs, data_dir, engine)
        warm, _ = build_all(langs, data_dir, engine)

        settings = load_settings(data_dir=data_dir)
        started = time.perf_counter()
        alert_message_sound(1, "nl", ALERT_TEXT, settings=settings, engine=engine)
        alert_cold = time.perf_counter() - started
        started = time.perf_counter()
        alert_message_sound(1, "nl", ALERT_TEXT, settings=settings, engine=engine)
        alert_warm = time.perf_counter() - started

    for key in cold:
        print(f"{key:32s} cold {cold[key] * 1000:8.1f} ms   warm {warm[key] * 1000:6.2f} ms", file=sys.stderr)
    slowest = max(cold, key=lambda key: cold[key])
    print(
        json.dumps(
            {
                "benchmark": "tts_prompts",
                "quick": args.quick,
                "engine": engine.identity,
                "languages": langs,
                "prompts": len(cold),
                "audio_seconds": round(audio_seconds, 1),
                "cold": summary(cold),
                "warm": summary(warm),
                "slowest_cold_prompt": slowest,
                "alert_message_cold_ms": round(alert_cold * 1000, 1),
                "alert_message_warm_ms": round(alert_warm * 1000, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
