"""Scene creation: the MjSpec builder, spec files, mesh import, Menagerie, procedural scenes,
reconstruction from captured depth and point clouds."""
