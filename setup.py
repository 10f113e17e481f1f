import os

import setuptools

here = os.path.dirname(os.path.abspath(__file__))

with open(os.path.join(here, "README.rst"), encoding="utf-8") as file:
    long_description = file.read()

version = {}
with open(os.path.join(here, "pypoolparty", "version.py"), encoding="utf-8") as file:
    exec(file.read(), version)

setuptools.setup(
    name="pypoolparty",
    version=version["__version__"],
    description="A multiprocessing.Pool whose workers are jobs of SLURM, Sun Grid Engine, "
    "HTCondor, or local processes.",
    long_description=long_description,
    long_description_content_type="text/x-rst",
    license="MIT",
    packages=setuptools.find_packages(include=["pypoolparty", "pypoolparty.*"]),
    # PEP 561: type checkers read the package's annotations (see pool_options.py).
    package_data={"pypoolparty": ["py.typed"]},
    python_requires=">=3.9",
    install_requires=[
        "cloudpickle>=2.0",
        "json-lines>=0.5",
        "rename-after-writing>=0.0.13",
    ],
    extras_require={
        "joblib": ["joblib>=1.3"],
        "test": ["pytest>=7", "sphinx", "joblib>=1.3", "scikit-learn", "mypy"],
    },
    entry_points={"console_scripts": ["pypoolparty = pypoolparty.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Operating System :: POSIX :: Linux",
        "Topic :: System :: Distributed Computing",
    ],
)
