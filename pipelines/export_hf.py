"""Export a stage-10 checkpoint to a Hugging Face GPT2LMHeadModel directory (needs the `hf` extra).

python -m pipelines.export_hf --checkpoint out/train/ckpt_0000200.pt --out out/hf
python -c "from transformers import GPT2LMHeadModel as M; M.from_pretrained('out/hf')"
"""

import argparse

from corpus.train.export_hf import export


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a ckpt_<step>.pt written by pipelines.pretrain")
    p.add_argument("--out", required=True, help="output directory (replaced if it exists)")
    a = p.parse_args(argv)
    out = export(a.checkpoint, a.out)
    print(f"wrote {out} (config.json, model.safetensors, vocab.json, merges.txt)")
    return out


if __name__ == "__main__":
    main()
