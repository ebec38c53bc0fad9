"""The run: CLI, config, Beam graph, runner options, manifest, report."""

import os

# Options for Arrow's jemalloc (the memory pool local runs use, see
# runner/local_runner.arrow_reuses_freed_memory). jemalloc reads them once, when pyarrow is
# loaded, so they are set before any module here imports pyarrow; a value already in the
# environment wins. Freed pages are kept for reuse (lazily freed: the kernel takes them back
# when it needs memory) and all threads share one arena, so a buffer freed by one thread is
# reused by the next, instead of each large buffer landing on freshly faulted pages.
JEMALLOC_CONF = "narenas:1,muzzy_decay_ms:-1"
os.environ.setdefault("JE_ARROW_MALLOC_CONF", JEMALLOC_CONF)
