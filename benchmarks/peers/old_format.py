"""Copy a sentence-transformers 6 model folder into the older format infinity-emb can read.

infinity-emb 0.0.78 needs sentence-transformers < 5 and transformers < 5 (see
/work/shared/PEERS.md), and those cannot read a folder saved by sentence-transformers 6. This
writes a copy (weights and tokenizer symlinked, not copied) with:

* ``modules.json`` types ``sentence_transformers.models.Transformer`` / ``.Pooling`` /
  ``.Normalize``;
* ``sentence_bert_config.json`` = ``{"max_seq_length": 512, "do_lower_case": false}``;
* ``1_Pooling/config.json`` in the old keys (mean pooling);
* ``tokenizer_config.json`` with ``"tokenizer_class": "XLMRobertaTokenizerFast"`` (e5).

Standard library only. Usage: ``python old_format.py SRC_DIR DEST_DIR``. Idempotent.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

OLD_TYPES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Normalize": "sentence_transformers.models.Normalize",
}
POOLING_MODES = (
    "cls_token",
    "max_tokens",
    "mean_tokens",
    "mean_sqrt_len_tokens",
    "weightedmean_tokens",
    "lasttoken",
)
# rewritten below; everything else in the source folder is linked
REWRITTEN = {
    "modules.json",
    "sentence_bert_config.json",
    "tokenizer_config.json",
    "config_sentence_transformers.json",
}


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def convert(src: Path, dest: Path) -> Path:
    src, dest = src.resolve(), dest.resolve()
    if not (src / "modules.json").is_file():
        raise SystemExit(f"{src}: not a sentence-transformers folder (no modules.json)")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for path in src.iterdir():
        if path.is_file() and path.name not in REWRITTEN:
            (dest / path.name).symlink_to(path)

    modules = json.loads((src / "modules.json").read_text())
    for module in modules:
        short = module["type"].rsplit(".", 1)[-1]
        if short not in OLD_TYPES:
            raise SystemExit(f"{src}: module type {module['type']} has no old-format name")
        module["type"] = OLD_TYPES[short]
        sub = module.get("path", "")
        if short == "Pooling":
            new = json.loads((src / sub / "config.json").read_text())
            dim = new.get("embedding_dimension") or new["word_embedding_dimension"]
            mode = new.get("pooling_mode", "mean")
            old = {"word_embedding_dimension": dim}
            old.update({f"pooling_mode_{m}": False for m in POOLING_MODES})
            key = {"mean": "mean_tokens", "cls": "cls_token", "max": "max_tokens"}.get(mode)
            if key is None:
                raise SystemExit(f"{src}: pooling mode {mode!r} not handled")
            old[f"pooling_mode_{key}"] = True
            old["include_prompt"] = bool(new.get("include_prompt", True))
            _write_json(dest / sub / "config.json", old)
        elif sub:
            shutil.copytree(src / sub, dest / sub)
    _write_json(dest / "modules.json", modules)
    _write_json(dest / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})

    tokenizer = json.loads((src / "tokenizer_config.json").read_text())
    for key in ("backend", "is_local", "local_files_only"):
        tokenizer.pop(key, None)
    tokenizer["tokenizer_class"] = "XLMRobertaTokenizerFast"
    _write_json(dest / "tokenizer_config.json", tokenizer)

    st_config = json.loads((src / "config_sentence_transformers.json").read_text())
    st_config["__version__"] = {"sentence_transformers": "3.4.1"}
    # callers send the "passage: " / "query: " prefixes themselves; no prompt by default
    st_config.pop("default_prompt_name", None)
    _write_json(dest / "config_sentence_transformers.json", st_config)
    return dest


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(convert(Path(sys.argv[1]).expanduser(), Path(sys.argv[2]).expanduser()))
