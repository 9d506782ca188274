"""The house rules of imports, read from the code itself: imports flow one way through exports' packages,
soil imports nothing of the project, and exports uses soil only through the names soil makes public.

Each rule fails with the file and the import that breaks it.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# exports' layers, lowest first: a module may import its own layer and the layers below, never above.
LAYERS = [
    ("exports.conf", "exports.formatting", "exports.validators", "exports.writers"),
    ("exports.sources",),
    ("exports.models",),
    ("exports.files",),
    ("exports.runs",),
    ("exports.saved",),
    ("exports.web", "exports.admin", "exports.tasks", "exports.apps", "exports.demo", "exports.management",
     "exports.templatetags", "exports.migrations", "exports.metrics"),
]

# What soil offers an app built on it (docs/soil.md, "Building an app on soil"): the contract of
# DESIGN.md plus these helpers. exports and project import nothing else of soil.
SOIL_PUBLIC = {
    "soil": {"DownloadBase", "CachedDownload", "FileDownload", "BlobDownload", "MultipleTaskDownload", "progress"},
    "soil.progress": {"STATES", "TaskProgress", "TaskStatus", "get_task_progress", "get_task_status",
                      "set_task_progress", "update_task_state", "TaskProgressManager", "store_progress",
                      "watch_progress", "async_watch_progress", "announce"},
    "soil.util": {"expose_cached_download", "expose_file_download", "expose_blob_download",
                  "get_download_context", "get_task", "start_download"},
    "soil.decorators": {"task", "periodic_task", "serial_task"},
    "soil.exceptions": {"TaskFailedError", "caused_by_unavailable_redis"},
    "soil.downloads": {"new_download_id", "download_id_for_task"},
    "soil.serving": {"serve_storage_key"},
    "soil.status": {"status_shape"},
    "soil.heartbeat": {"is_alive", "last_heartbeat"},
    "soil.poll_tokens": {"status_url"},
}


def python_files(*folders):
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path):
    """(line, imported module, [names]) for every import of the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            yield node.lineno, module, [alias.name for alias in node.names]


def layer_of(module):
    best = None
    for rank, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    return None if best is None else best[0]


def targets(module, names):
    """The modules an import reaches: `from exports.runs import lifecycle` reaches exports.runs.lifecycle."""
    if not names:
        return [module]
    return [f"{module}.{name}" if (ROOT / module.replace(".", "/") / f"{name}.py").exists()
            or (ROOT / module.replace(".", "/") / name).is_dir() else module for name in names]


def test_exports_imports_flow_one_way():
    broken = []
    for path in python_files("exports"):
        if module_name(path) == "exports":
            continue  # the app's empty package
        here = layer_of(module_name(path))
        assert here is not None, f"{path.relative_to(ROOT)} is in no layer of tests/test_layers.py: place it"
        for line, module, names in imports_of(path):
            for target in targets(module, names):
                there = layer_of(target) if target.startswith("exports") else None
                if there is not None and there > here:
                    broken.append(f"{path.relative_to(ROOT)}:{line} imports {target} (a higher layer)")
    assert not broken, "\n".join(broken)


def test_the_site_imports_of_exports_only_the_public_function_of_its_metrics():
    """project/ includes exports' urls by name (project/urls.py) and calls exports.metrics; nothing else."""
    broken = [f"{path.relative_to(ROOT)}:{line} imports {module} {names}"
              for path in python_files("project") for line, module, names in imports_of(path)
              if (module == "exports" or module.startswith("exports.")) and module != "exports.metrics"]
    assert not broken, "\n".join(broken)


def test_soil_imports_nothing_of_the_project():
    broken = [f"{path.relative_to(ROOT)}:{line} imports {module}"
              for path in python_files("soil") for line, module, _ in imports_of(path)
              if module.split(".")[0] in {"exports", "project", "tests"}]
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("folder", ["exports", "project"])
def test_apps_use_only_soils_public_names(folder):
    broken = []
    for path in python_files(folder):
        for line, module, names in imports_of(path):
            if module != "soil" and not module.startswith("soil."):
                continue
            public = SOIL_PUBLIC.get(module)
            if public is None or not names or set(names) - public:
                broken.append(f"{path.relative_to(ROOT)}:{line} imports {module} {names or ''}")
    assert not broken, "\n".join(broken)


def test_a_rule_breaker_is_caught(tmp_path):
    """The checks above can fail: an upward import is reported."""
    assert layer_of("exports.files.export_file") < layer_of("exports.runs.lifecycle")
    assert layer_of("exports.writers.base") < layer_of("exports.models")
    assert targets("exports.runs", ["lifecycle"]) == ["exports.runs.lifecycle"]
