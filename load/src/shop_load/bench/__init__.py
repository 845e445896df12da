"""The benchmarks: the shop started for them, reads and writes measured, the sale, and their report."""
