"""Allow ``python -m fedgossip``."""

from fedgossip.cli import main

if __name__ == "__main__":
    main()
