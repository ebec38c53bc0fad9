"""`refinery export`: a finished run rewritten in other trainers' file layouts."""
