"""One module per subcommand; each exposes register(subparsers)."""
from . import data, evaluate

COMMANDS = (data.register, evaluate.register)
