"""The bundled tasks, one small file each (registered in ``hybridsim._src.envs.registry``)."""
