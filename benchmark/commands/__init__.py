"""One module per subcommand; each exposes register(subparsers)."""
from . import baseline, calibrate, data, distill, evaluate, leaderboard, results, submit, teacher, validate

COMMANDS = (data.register, validate.register, submit.register, evaluate.register, baseline.register,
            leaderboard.register, results.register, calibrate.register, distill.register, teacher.register)
