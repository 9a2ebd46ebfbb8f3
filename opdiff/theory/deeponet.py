"""Moved to :mod:`opdiff.deeponet_bounds`; re-exported here for existing imports."""

from opdiff.deeponet_bounds import (PCA, gronwall_sensor_bound, pca, pca_floor, project,
                                    relative_pca_floor, sensor_error_estimate,
                                    trapezoid_weights)

__all__ = ["PCA", "pca", "pca_floor", "relative_pca_floor", "project", "trapezoid_weights",
           "sensor_error_estimate", "gronwall_sensor_bound"]
