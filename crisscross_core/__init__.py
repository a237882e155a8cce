"""crisscross-kit: CrissCross audio-visual self-supervised learning as a small, importable core."""
__version__ = "0.1.0"
