"""crisscross-kit."""
