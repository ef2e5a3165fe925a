"""The paper's evaluation protocol (SR / NCM / RMSE under random rotation + scale) and its reports."""
