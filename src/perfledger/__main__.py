"""``python -m perfledger``: the same command line as the ``perfledger`` script."""

from perfledger.cli import main

if __name__ == "__main__":
    main()
