"""Parameter-efficient fine-tuning: LoRA, prefix tuning and prompt tuning around any model.

`adapted.Adapted` wraps a model (sharing its scope, so the base keeps its parameter
names) and adds the method's parameters beside the base's; `finetune.method` chooses.
"""
