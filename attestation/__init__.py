"""Verification of confidential-inference attestations (TDX, event log, binding, GPU, receipts)."""
