"""What synth-cnn perceives and how it learns to: its pretraining on SynthClips frames (pretrain.py,
`vidcap pretrain-cnn`), read-out probes of any feature cache of a SynthClips folder (probes.py,
`vidcap probe-features`) and learned object slots measured against the oracle, field by field
(measure.py, the benchmark's `perception` suite). Above features/: it trains a backbone and reads
feature caches; nothing in features/ imports it."""
