import Engine
print("cnn")
