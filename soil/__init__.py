"""soil: progress, status and downloads for any Celery task.

    from soil import DownloadBase
    DownloadBase.set_progress(my_task, current, total)
"""
__version__ = "1.0.0"  # the one place: pyproject.toml reads it

from .downloads import BlobDownload, CachedDownload, DownloadBase, FileDownload, MultipleTaskDownload

__all__ = ["DownloadBase", "CachedDownload", "FileDownload", "BlobDownload", "MultipleTaskDownload"]
