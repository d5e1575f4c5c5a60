"""What a sweep runs: the config and presets, the axes' values, the cells and their skip rules."""
