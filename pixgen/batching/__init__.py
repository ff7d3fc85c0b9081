"""``pixgen batch``: many runs as one job, a queue of ordinary ``RunConfig``s, on local worker processes or a
Ray cluster; resumable (``batch.jsonl``), with a gallery. ``pixgen.batch(jobs, executor=...)`` is the API.

(The package is ``batching``, not ``batch``: a submodule ``pixgen.batch`` would replace the ``pixgen.batch``
function as an attribute of ``pixgen`` the first time it is imported.)
"""

from pixgen.batching.runner import batch

__all__ = ["batch"]
