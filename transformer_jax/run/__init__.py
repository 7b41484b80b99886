"""The run layer: what every experiment does with a workdir, one concern a file.

  task.py          build a task: the model (adapted, int8), its mesh, the warm start, the Trainer
  tokenizers.py    which existing tokenizer a run takes (data.tokenizer_path, the workdir's,
                   the weights')
  sources.py       open the weights train.init_from names (a workdir, DIR@STEP, hf:DIR, an
                   exported folder); source_config.py: a Hugging Face folder's model fields
  weights.py       the parameters a mode works with: restored, warm-started, int8
  train.py         --mode=train: the checks, the lock, the workdir's files, the loop
  evaluate.py      --mode=eval's evaluation and its record
  export.py        --mode=export: native or Hugging Face folders, standalone fine-tuned workdirs
  workdir_files.py the files a workdir holds besides checkpoints (config.json, the tokenizer)
  modes.py         what launch.py's flags give a mode; mode checks shared by the experiments
  line_files.py    one item a line in and out (--input, --output, --prompts_file)
The experiments themselves (transformer_jax/tasks/) compose these.
"""
