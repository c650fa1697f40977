"""ExIQA (paper 004): explainable IQA through distortion attributes."""
