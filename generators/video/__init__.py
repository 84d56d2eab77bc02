"""Video generator families. Importing this package registers them all.

Face swaps on real clips (``faceswap``: graphics, warp and Poisson blending;
``ae_swap``: the shared-encoder autoencoder of the original deepfakes; ``selfblend``:
a face blended, slightly changed, onto itself) and voice swaps (``voice_swap``: real
frames, copy-synthesised voice track). All are conditional:
``generate(n, seed=..., source=VideoSource)`` changes real clips and returns them in
``Samples.videos``, with per frame the boxes of the faces changed.
"""

from generators.video import ae_swap, faceswap, selfblend, voice_swap

__all__ = ["ae_swap", "faceswap", "selfblend", "voice_swap"]
