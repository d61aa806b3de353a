"""`stepvideo doctor`: `probes` gathers facts about this machine, `report` judges them (pure functions)."""
