"""Request and response models, one module per resource; ``…Public`` is what goes out,
``…Create`` / ``…Update`` what comes in."""
