"""Voice generator families. Importing this package registers them all.

Copy synthesis of real utterances (``griffin_lim``, ``world``, ``lpc``,
``neural_vocoder``), text-to-speech (``tts``) and partially synthetic clips
(``splice``). ``world`` needs pyworld (``pip install pyworld``) and ``tts`` the
``espeak-ng`` program: both register regardless, and say what to install when used.
"""

from generators.audio import griffin_lim, lpc, splice, tts, vocoder, world

__all__ = ["griffin_lim", "lpc", "splice", "tts", "vocoder", "world"]
