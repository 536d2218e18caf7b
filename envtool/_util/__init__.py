"""Small pure helpers shared by every layer."""
