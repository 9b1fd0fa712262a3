/** The embedded directory (users and scrypt hashes of examples/o365info.yaml) keeps the Directory contract. */
import { FileDirectory } from '../../src/directory/directory.ts';
import { contractEstateIndex, directoryContract } from '../support/directory.contract.ts';

directoryContract('FileDirectory on examples/o365info.yaml', () =>
  Promise.resolve({ directory: new FileDirectory(contractEstateIndex()), close: () => Promise.resolve() }),
);
