"""`coursereg`: the operator's command line (main.py holds the subcommand registry)."""
