"""cloudpipe: stream data of any length into one S3 object through multipart upload."""

import logging

from cloudpipe._version import __version__
from cloudpipe.ending import Ending, State
from cloudpipe.errors import (
    EndpointUnreachableError,
    ObjectExistsError,
    ResumeError,
    UploadError,
)
from cloudpipe.partsize import PartPolicy
from cloudpipe.resume import resume
from cloudpipe.text import TextWriter, open
from cloudpipe.verify import Verdict, Verification, verify
from cloudpipe.writer import S3MultipartWriter

logging.getLogger("cloudpipe").addHandler(logging.NullHandler())  # the application decides

__all__ = [
    "Ending",
    "EndpointUnreachableError",
    "ObjectExistsError",
    "PartPolicy",
    "ResumeError",
    "S3MultipartWriter",
    "State",
    "TextWriter",
    "UploadError",
    "Verdict",
    "Verification",
    "__version__",
    "open",
    "resume",
    "verify",
]
