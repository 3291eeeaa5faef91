"""What synth-cnn perceives and how it learns to: its pretraining on SynthClips frames (pretrain.py,
`vidcap pretrain-cnn`) and read-out probes of any feature cache of a SynthClips folder (probes.py,
`vidcap probe-features`). Above features/: it trains a backbone and reads feature caches; nothing
in features/ imports it."""
