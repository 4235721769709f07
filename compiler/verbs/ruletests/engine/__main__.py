"""`python -m entra_sigma.verbs.ruletests.engine`: print the seams' digests (see seams.py)."""

from .seams import main

main()
