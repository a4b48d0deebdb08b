"""Stage 10: the bundled GPT pre-training library (the CLI is pipelines/pretrain.py).

gpt.py         GPTConfig + GPT (GPT-2 architecture, nanoGPT names), presets tiny..gpt2-xl, generate()
loader.py      llm.c shard reader with header checks and HINT errors; DDP rank striding; exact position
optim.py       AdamW weight-decay groups; warmup + cosine / WSD learning-rate schedules
device.py      torchrun/DDP setup (NCCL on GPU, gloo on CPU), bf16 autocast, device peak FLOP/s for MFU
checkpoint.py  atomic checkpoints with model, optimizer, step, data position, RNG states
trainer.py     TrainConfig and the training loop (grad accumulation, eval, logging, resume)
export_hf.py   checkpoint -> Hugging Face GPT2LMHeadModel directory
"""
