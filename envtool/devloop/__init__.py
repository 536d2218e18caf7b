"""The development loop: watch rules → batched actions → sync / restart / exec / rebuild."""
