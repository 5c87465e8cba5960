"""Scene creation: the MjSpec builder, spec files, mesh import, Menagerie, procedural scenes."""
