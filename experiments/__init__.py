"""Task definitions that compose the library; `launch.py` picks one by `config.experiment`."""
