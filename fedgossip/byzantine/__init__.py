"""Faulty and malicious neighbours: attacks a node can be told to mount, and the rules that withstand them."""
