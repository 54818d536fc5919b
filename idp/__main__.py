"""`python -m idp`: the operator CLI."""

from idp.cli import main

main()
