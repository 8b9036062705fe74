"""Execute chapters with papermill, safely (used by ``python -m dpo_teach run`` and ``make course``).

A chapter runs in a temporary folder: the executed notebook and its figures are moved into place
only when every cell succeeded, so a failure leaves the committed notebook and figures exactly as
they were. Papermill's per-cell timestamps are stripped so that two runs give identical bytes.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .course import REPO, Chapter

# Fixed thread counts for every kernel the runner starts (float32 sums depend on them).
KERNEL_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "DPO_TEACH_NO_PROGRESS": "1",
    # Find the "python3" kernel of this environment first, not one in the user's home.
    "JUPYTER_PREFER_ENV_PATH": "1",
}


class ChapterFailed(RuntimeError):
    """A cell of a chapter raised; nothing was written."""


def strip_run_metadata(nb) -> None:
    """Remove what changes from run to run: papermill's timestamps, execution times, widget state,
    and the timing-dependent split of printed text into several stream outputs."""
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = _coalesce_streams(cell.outputs)


def _coalesce_streams(outputs):
    merged = []
    for out in outputs:
        prev = merged[-1] if merged else None
        if (out.output_type == "stream" and prev is not None and prev.output_type == "stream"
                and prev.name == out.name):
            prev.text += out.text
        else:
            merged.append(out)
    return merged


def _atomic_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def run_chapter(chapter: Chapter, parameters: dict | None = None, output_dir: Path | None = None,
                root: Path = REPO) -> Path:
    """Execute one chapter; return the path of the executed notebook.

    Without ``output_dir`` the canonical notebook and ``figures/`` are updated in place; with it,
    the notebook goes to ``output_dir/NN_name.ipynb`` and figures to ``output_dir/figures/``.
    """
    import nbformat
    import papermill as pm

    root = Path(root)
    source = root / chapter.notebook
    dest_nb = (Path(output_dir) if output_dir else source.parent) / source.name
    dest_fig = (Path(output_dir) / "figures") if output_dir else root / "figures"
    with tempfile.TemporaryDirectory(prefix="dpo-teach-run-") as tmp:
        tmp = Path(tmp)
        env_before = {k: os.environ.get(k) for k in [*KERNEL_ENV, "DPO_TEACH_FIGURES"]}
        os.environ.update(KERNEL_ENV)
        os.environ["DPO_TEACH_FIGURES"] = str(tmp / "figures")
        try:
            pm.execute_notebook(
                str(source), str(tmp / source.name), parameters=parameters or None,
                cwd=str(source.parent), kernel_name="python3", progress_bar=False,
                log_output=False, report_mode=False,
                # The kernel's own start-up warnings are noise here; cell errors are still reported.
                extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except pm.PapermillExecutionError as err:
            raise ChapterFailed(
                f"chapter {chapter.number} ({chapter.notebook}) failed in cell {err.cell_index} "
                f"(execution count {err.exec_count}): {err.ename}: {err.evalue}; nothing was written") from None
        finally:
            for k, v in env_before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        nb = nbformat.read(tmp / source.name, as_version=4)
        strip_run_metadata(nb)
        nbformat.write(nb, tmp / "clean.ipynb")
        for png in sorted((tmp / "figures").glob("*.png")):
            _atomic_copy(png, dest_fig / png.name)
        _atomic_copy(tmp / "clean.ipynb", dest_nb)
    return dest_nb
