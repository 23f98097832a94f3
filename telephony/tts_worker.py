"""Render one prompt with pyttsx3 (espeak-ng) to a WAV file, in a process of its own.

`telephony.prompts` runs this file as a child process for every prompt it has not rendered before. pyttsx3's
espeak driver keeps global C state and, now and then, crashes the process it runs in (a segmentation fault in
`setProperty`); in a child that costs one render, which is tried again, instead of the web process and every
call it serves. Usage: `python tts_worker.py VOICE_ID RATE OUT.wav` with the text on standard input. Exit 0 when
the file holds audio, 3 when the voice is missing, 4 when pyttsx3 wrote nothing.
"""

import contextlib
import io
import os
import sys

RENDERS_PER_PROCESS = 3


def main() -> int:
    voice, rate, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    text = sys.stdin.read()
    import pyttsx3

    engine = pyttsx3.init("espeak")
    wanted = voice.lower()
    voice_id = next(
        (
            str(v.id)
            for v in engine.getProperty("voices")
            if v.id.lower() == wanted or v.id.lower().rsplit("/", 1)[-1] == wanted
        ),
        None,
    )
    if voice_id is None:
        print(f"espeak-ng voice {voice!r} is not installed", file=sys.stderr)
        return 3
    engine.setProperty("voice", voice_id)
    engine.setProperty("rate", rate)
    # The driver writes the file inside an espeak callback that swallows exceptions, and the first render of a
    # process often writes nothing for a text of more than one clause (measured here: every time for the
    # callback's introduction); the same engine then renders it. So: render again in this process.
    for _attempt in range(RENDERS_PER_PROCESS):
        # The driver prints "Audio saved to ..." on stdout.
        with contextlib.redirect_stdout(io.StringIO()):
            engine.save_to_file(text, out)
            engine.runAndWait()
        if os.path.exists(out) and os.path.getsize(out) > 44:
            return 0
    return 4


if __name__ == "__main__":
    sys.exit(main())
