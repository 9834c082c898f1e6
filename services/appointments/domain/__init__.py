"""Pure booking rules: no I/O, only values in and decisions out."""
