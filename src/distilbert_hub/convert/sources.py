"""`source` -> a local directory: a preset name, `hf://org/name`, or a path. Preset names and `hf://`
resolve through `huggingface_hub`'s cache, so they work offline (`HF_HUB_OFFLINE=1`) once it holds them.
"""

import difflib
import os
from pathlib import Path

from distilbert_hub.distilbert_presets import backbone_presets

HF_PREFIX = "hf://"


class PresetNotFoundError(ValueError):
    """A preset name, repository or directory that cannot be found."""


def _download(repo_id, source):
    try:
        import huggingface_hub
    except ImportError:
        raise PresetNotFoundError(
            f"{source!r} is a Hugging Face repository ({repo_id}); reading it needs huggingface_hub: "
            "pip install 'distilbert-hub[hub]', or pass a local checkpoint directory."
        ) from None
    try:
        return Path(huggingface_hub.snapshot_download(repo_id))
    except Exception as error:  # offline and not cached, unknown repo, no network
        raise PresetNotFoundError(
            f"{source!r}: Hugging Face repository {repo_id} is not available here "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}). "
            f"Download it once where the hub is reachable (`hf download {repo_id}`) into the cache "
            "this process uses (HF_HOME / HF_HUB_CACHE), or pass a local checkpoint directory."
        ) from None


def resolve(source):
    """The local directory that `source` names."""
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise TypeError(f"a preset must be a name, 'hf://org/name' or a directory; got {source!r}.")
    if source.startswith(HF_PREFIX):
        repo_id = source[len(HF_PREFIX) :].strip("/")
        if repo_id.count("/") > 1 or not repo_id:
            raise PresetNotFoundError(f"{source!r}: expected hf://org/name.")
        return _download(repo_id, source)
    if source in backbone_presets:
        return _download(backbone_presets[source]["metadata"]["hf_name"], source)
    path = Path(source).expanduser()
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        is_dir = exists = False
    if is_dir:
        return path
    if exists:
        raise PresetNotFoundError(f"{source!r} is a file; a preset is a directory (config.json and weights).")
    close = difflib.get_close_matches(source, list(backbone_presets), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise PresetNotFoundError(
        f"{source!r:.300} is neither a preset name ({', '.join(sorted(backbone_presets))}), "
        f"nor hf://org/name, nor an existing directory.{hint}"
    )
