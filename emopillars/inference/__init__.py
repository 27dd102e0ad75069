"""Using a trained model folder: what `predict`, `export` and `demo` run; training imports only the classifier.

classifier.py   `EmotionClassifier`: load a folder (torch or ONNX), predict, explain, save
onnx_model.py   the ONNX twin on onnxruntime (neither torch nor transformers imported)
export.py       `emopillars export`: a torch folder -> an ONNX folder (fp32 or int8)
explain.py      Integrated Gradients word attributions for the labels the classifier chose
config.py       `PredictConfig`, `ExportConfig`
"""
