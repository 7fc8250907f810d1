"""What every part of vidlake stands on: settings, storage, the lake, the Ray runtime."""
