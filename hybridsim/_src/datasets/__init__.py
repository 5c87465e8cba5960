"""Real robot data in and out: LeRobot v3 datasets, robomimic HDF5, the interchange .npz."""
