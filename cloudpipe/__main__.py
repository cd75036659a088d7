"""``python -m cloudpipe``: the cloudpipe command."""

from cloudpipe.cli import entry_point

entry_point()
