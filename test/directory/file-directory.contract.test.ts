/** The embedded directory (users and scrypt hashes of examples/o365info.yaml) keeps the Directory contract. */
import { CachedDirectory } from '../../src/directory/directory-cache.ts';
import { FileDirectory } from '../../src/directory/directory.ts';
import { contractEstateIndex, directoryContract } from '../support/directory.contract.ts';

directoryContract('FileDirectory on examples/o365info.yaml', () =>
  Promise.resolve({ directory: new FileDirectory(contractEstateIndex()), close: () => Promise.resolve() }),
);

// The cache in front of every directory hands the grants through unchanged.
directoryContract('CachedDirectory in front of FileDirectory', () =>
  Promise.resolve({
    directory: new CachedDirectory(new FileDirectory(contractEstateIndex())),
    close: () => Promise.resolve(),
  }),
);
