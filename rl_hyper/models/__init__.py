"""Networks of the meta-RL agent: trajectory encoder, policies (plain / +S / hyper), decoders."""
